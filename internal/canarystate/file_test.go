package canarystate_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/canarystate/storetest"
)

func TestFileStoreContract(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "canary")
	storetest.Run(t, func() canarystate.Store { return &canarystate.FileStore{Dir: dir, Service: "payment"} })
	if _, err := os.Stat(filepath.Join(dir, "payment.json")); err != nil {
		t.Fatal(err)
	}
}

// Processes, not goroutines, increment the same state: the file lock, not
// a mutex in memory, keeps every update.
func TestFileStoreAcrossProcesses(t *testing.T) {
	if dir := os.Getenv("FILESTORE_DIR"); dir != "" {
		s := &canarystate.FileStore{Dir: dir, Service: "payment"}
		for range 25 {
			for {
				st, ver, err := s.Load(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				st.Step++
				if _, err := s.Save(context.Background(), st, ver); err == nil {
					break
				}
			}
		}
		return
	}
	dir := t.TempDir()
	s := &canarystate.FileStore{Dir: dir, Service: "payment"}
	if _, err := s.Save(context.Background(), &canarystate.State{Service: "payment"}, ""); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	for range 4 {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestFileStoreAcrossProcesses$")
		cmd.Env = append(os.Environ(), "FILESTORE_DIR="+dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	st, ver, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 100 || ver != strconv.Itoa(101) {
		t.Fatalf("step %d version %s after 4 processes x 25 increments; want 100 and 101", st.Step, ver)
	}
}

func TestFileStoreRefusesForeignFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "payment.json"), []byte(`{"service":"payment"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := (&canarystate.FileStore{Dir: dir, Service: "payment"}).Load(context.Background())
	if err == nil {
		t.Fatal("a state without a version was read")
	}
}
