package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestNormalizeEmail(t *testing.T) {
	cases := []struct{ in, want, err string }{
		{"Alice@Example.COM", "alice@example.com", ""},
		{"  bob@example.org ", "bob@example.org", ""},
		{"", "", "email: is required"},
		{"alice", "", "not a valid address"},
		{"Alice <alice@example.com>", "", "not a valid address"},
		{"alice@localhost", "", "needs a domain"},
		{"alice@@example.com", "", "not a valid address"},
		{strings.Repeat("a", 250) + "@example.com", "", "longer than 254"},
	}
	for _, tc := range cases {
		got, err := NormalizeEmail(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestNewUser(t *testing.T) {
	now := time.Date(2030, 5, 1, 12, 0, 0, 123456789, time.UTC)
	def := DefaultPreferences()
	cases := []struct {
		name        string
		email, full string
		prefs       Preferences
		err         string
	}{
		{"valid", "a@example.com", "  Ada Lovelace ", def, ""},
		{"empty name", "a@example.com", "   ", def, "full_name: is required"},
		{"control character", "a@example.com", "Ada\x00", def, "control characters"},
		{"unknown zone", "a@example.com", "Ada", Preferences{Timezone: "Mars/Olympus", Language: "en"}, "not a known IANA time zone"},
		{"Local is not a zone", "a@example.com", "Ada", Preferences{Timezone: "Local", Language: "en"}, "not an IANA time zone"},
		{"bad language", "a@example.com", "Ada", Preferences{Timezone: "UTC", Language: "english!"}, "not a BCP 47"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := NewUser(tc.email, tc.full, tc.prefs, now)
			if tc.err != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ValidationError with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if u.FullName != "Ada Lovelace" || u.Status != Active || u.Version != 1 || u.ID == "" ||
				!u.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
				t.Fatalf("user = %+v", u)
			}
		})
	}
}

func TestApply(t *testing.T) {
	now := time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)
	u, err := NewUser("a@example.com", "Ada", DefaultPreferences(), now)
	if err != nil {
		t.Fatal(err)
	}
	st := func(s Status) *Status { return &s }
	str := func(s string) *string { return &s }
	cases := []struct {
		name  string
		from  Status
		patch Patch
		err   string
	}{
		{"deactivate", Active, Patch{Status: st(Inactive)}, ""},
		{"suspend", Active, Patch{Status: st(Suspended)}, ""},
		{"reinstate", Suspended, Patch{Status: st(Active)}, ""},
		{"suspended cannot become inactive", Suspended, Patch{Status: st(Inactive)}, "cannot change from suspended to inactive"},
		{"inactive cannot be suspended", Inactive, Patch{Status: st(Suspended)}, "cannot change from inactive to suspended"},
		{"unknown status", Active, Patch{Status: st("deleted")}, "not active, inactive or suspended"},
		{"rename", Active, Patch{FullName: str("Ada King")}, ""},
		{"language canonicalised", Active, Patch{Language: str("en-gb")}, ""},
		{"bad zone", Active, Patch{Timezone: str("Nowhere")}, "not a known IANA"},
		{"nothing set", Active, Patch{}, "sets no field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			from := u
			from.Status = tc.from
			next, err := from.Apply(tc.patch, now.Add(time.Second))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if next.Version != from.Version+1 || !next.UpdatedAt.After(from.UpdatedAt) {
				t.Fatalf("version/updated not bumped: %+v", next)
			}
			if tc.patch.Language != nil && next.Preferences.Language != "en-GB" {
				t.Fatalf("language = %q", next.Preferences.Language)
			}
		})
	}
}
