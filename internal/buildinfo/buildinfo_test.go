package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFillFromBuildInfo(t *testing.T) {
	tests := []struct {
		name string
		in   Info
		bi   debug.BuildInfo
		want Info
	}{
		{
			name: "vcs stamp fills an unstamped build",
			bi: debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "0123456789abcdef0123"},
				{Key: "vcs.time", Value: "2026-11-25T00:00:00Z"},
			}},
			want: Info{Version: "v1.2.3", Commit: "0123456789ab", BuildDate: "2026-11-25T00:00:00Z"},
		},
		{
			name: "a modified tree is marked dirty",
			bi: debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "abc"},
				{Key: "vcs.modified", Value: "true"},
			}},
			want: Info{Commit: "abc-dirty"},
		},
		{
			name: "linker values win",
			in:   Info{Version: "v9", Commit: "fff", BuildDate: "d"},
			bi: debug.BuildInfo{Main: debug.Module{Version: "v1"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "abc"},
				{Key: "vcs.time", Value: "t"},
			}},
			want: Info{Version: "v9", Commit: "fff", BuildDate: "d"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in
			fillFromBuildInfo(&got, &tt.bi)
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestGetAlwaysNamesTheGoVersion(t *testing.T) {
	info := Get()
	if info.GoVersion == "" || info.Platform == "" || info.Version == "" || info.Commit == "" {
		t.Fatalf("incomplete info: %+v", info)
	}
}
