package build

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// keyMemo remembers the keys one go list run gave, with the size, time and
// mode of every local file and directory they were computed from (a file
// added to or removed from a package changes its directory's time). When
// none of them changed, a warm build skips go list, the slowest step left.
type keyMemo struct {
	Keys  map[string]string   `json:"keys"`
	Stats map[string]fileStat `json:"stats"`
}

type fileStat struct {
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime"`
	Mode    uint32 `json:"mode"`
}

func statFile(path string) fileStat {
	st, err := os.Stat(path)
	if err != nil {
		return fileStat{Size: -1}
	}
	return fileStat{Size: st.Size(), ModTime: st.ModTime().UnixNano(), Mode: uint32(st.Mode())}
}

func (m *keyMemo) stat(path string) { m.Stats[path] = statFile(path) }

// current reports whether every file is as it was when the keys were made.
func (m *keyMemo) current() bool {
	if len(m.Stats) == 0 || len(m.Keys) == 0 {
		return false
	}
	for path, st := range m.Stats {
		if statFile(path) != st {
			return false
		}
	}
	return true
}

// memoPath names the memo of one go list: the same project, packages,
// platform and toolchain.
func (t *toolchain) memoPath(p Platform, pkgs []string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d\n%s\n%s\n%s\n%s\n%s\n%s\n%s", cacheFormat, t.dir, strings.Join(pkgs, ","), p, t.version, t.gomod, t.gowork, t.flags))
	return filepath.Join(t.cacheDir, "keys-"+hex.EncodeToString(sum[:12])+".json")
}
