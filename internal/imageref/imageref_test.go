package imageref

import (
	"strings"
	"testing"
)

const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		want   Ref
		string string // what String gives back
	}{
		{"user:v1", Ref{Repository: "user", Tag: "v1"}, "user:v1"},
		{"localhost:5000/user:v1", Ref{Repository: "localhost:5000/user", Tag: "v1"}, "localhost:5000/user:v1"},
		{"registry:5000/shop/user:1.2.3-rc.1", Ref{Repository: "registry:5000/shop/user", Tag: "1.2.3-rc.1"}, "registry:5000/shop/user:1.2.3-rc.1"},
		{"ghcr.io/acme/user_svc:latest", Ref{Repository: "ghcr.io/acme/user_svc", Tag: "latest"}, "ghcr.io/acme/user_svc:latest"},
		{"[::1]:5000/user:v1", Ref{Repository: "[::1]:5000/user", Tag: "v1"}, "[::1]:5000/user:v1"},
		{"user@" + digest, Ref{Repository: "user", Digest: digest}, "user@" + digest},
		{"localhost:5000/user@" + digest, Ref{Repository: "localhost:5000/user", Digest: digest}, "localhost:5000/user@" + digest},
		{"localhost:5000/user:v1@" + digest, Ref{Repository: "localhost:5000/user", Tag: "v1", Digest: digest}, "localhost:5000/user@" + digest},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Parse = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.string {
				t.Errorf("String() = %q, want %q", s, tt.string)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", `image reference "": no repository`},
		{"localhost:5000/user", `image reference "localhost:5000/user" names neither a tag nor a digest`},
		{"user", `image reference "user" names neither a tag nor a digest`},
		{"user:", `image reference "user:": tag "" is not letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')`},
		{"user:-v1", `image reference "user:-v1": tag "-v1" is not letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')`},
		{"user:" + strings.Repeat("a", 129), `tag "` + strings.Repeat("a", 129) + `" is not`},
		{"User:v1", `image reference "User:v1": repository "User": "User" is not lower-case letters and digits separated by '.', '_' or '-'`},
		{"/user:v1", `image reference "/user:v1": repository "/user": "" is not lower-case letters and digits`},
		{"shop//user:v1", `repository "shop//user": "" is not`},
		{"user@sha256:abc", `image reference "user@sha256:abc": digest "sha256:abc" is not sha256: and 64 lower-case hex digits`},
		{"user@" + strings.ToUpper(digest), `digest "SHA256:`},
		{"user@md5:" + digest[7:], `digest "md5:`},
		{"user:v1@" + digest + "@" + digest, `is not sha256: and 64 lower-case hex digits`},
		{"user name:v1", `"user name" is not lower-case letters`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\nlacks %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		ref  Ref
		want string
	}{
		{Ref{}, ""},
		{Ref{Repository: "user"}, "user"},
		{Ref{Repository: "user", Tag: "v1"}, "user:v1"},
		{Ref{Repository: "user", Tag: "v1", Digest: digest}, "user@" + digest},
	}
	for _, tt := range tests {
		if got := tt.ref.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		ref  Ref
		want string // "" for valid
	}{
		{Ref{Repository: "localhost:5000/user", Tag: "v1"}, ""},
		{Ref{Repository: "user", Digest: digest}, ""},
		{Ref{Repository: "user", Tag: "v1", Digest: digest}, ""},
		{Ref{Repository: "user"}, `image reference "user" names neither a tag nor a digest`},
		{Ref{Repository: "user", Tag: "v 1"}, `tag "v 1" is not`},
		{Ref{Repository: "user", Digest: "sha256:x"}, `digest "sha256:x" is not`},
		{Ref{Repository: "user:v1", Digest: digest}, `image repository "user:v1" holds more than a repository`},
		{Ref{Tag: "v1"}, `no repository`},
	}
	for _, tt := range tests {
		err := tt.ref.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.ref, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: got %v, want an error with %q", tt.ref, err, tt.want)
		}
	}
}
