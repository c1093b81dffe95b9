package build

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestConcurrentBuildsKeepEveryImageInTheRecord(t *testing.T) {
	dir := t.TempDir()
	src := Source{Commit: strings.Repeat("c", 40)}
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s := fmt.Sprintf("svc%d", i)
			errs[i] = record(dir, src, "localhost:5000", []Result{{Service: s, State: StatePushed, Ref: "localhost:5000/" + s + "@sha256:" + strings.Repeat("0", 64)}})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f, err := readRecords(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Builds) != 1 || len(f.Builds[0].Images) != n {
		t.Fatalf("record after %d concurrent builds: %+v, want one entry with every service", n, f.Builds)
	}
}
