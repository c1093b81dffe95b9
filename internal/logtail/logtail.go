// Package logtail reads the end of a server's log for a failure message:
// the test harnesses (testcluster, promtest) show it when what they run
// fails.
package logtail

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Of returns the last 25 lines (at most 4 KiB) of the log at path, under a
// line naming it.
func Of(path string) string {
	const maxBytes = 4 << 10
	const maxLines = 25
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		_, _ = f.Seek(-maxBytes, io.SeekEnd)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return fmt.Sprintf("--- last lines of %s ---\n%s", path, strings.Join(lines, "\n"))
}
