// Package buildinfo holds the version and commit a service binary was
// built from. Release builds set them with
//
//	-ldflags "-X github.com/msctl/msctl/services/kit/buildinfo.version=v1.2.3
//	          -X github.com/msctl/msctl/services/kit/buildinfo.commit=abc1234"
//
// and other builds fall back to what the Go toolchain recorded.
package buildinfo

import "runtime/debug"

var (
	version = ""
	commit  = ""
)

// Version is the build version, "dev" when nothing recorded one.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Commit is the source revision, "none" when unknown.
func Commit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	return "none"
}
