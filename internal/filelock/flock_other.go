//go:build !unix

package filelock

import (
	"fmt"
	"os"
	"runtime"
)

func lock(f *os.File, _ bool) error {
	return fmt.Errorf("locking %s: file locks are not supported on %s", f.Name(), runtime.GOOS)
}
