// Package storetest opens a service's store on a fresh database of each
// kind the kit supports, for the store contract tests that every service
// runs on both. Test code only.
package storetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/kit/storage/pgtest"
)

// Backends returns, by name ("sqlite", "postgres"), functions that open a
// store with open on a fresh, migrated database: an SQLite file in the
// test's temporary directory, or a new PostgreSQL database from pgtest,
// which fails (never skips) when the server is unreachable. The store is
// closed when the test ends.
func Backends[S interface{ Close() }](open func(context.Context, storage.Location) (S, error)) map[string]func(t *testing.T) S {
	start := func(t *testing.T, loc storage.Location) S {
		t.Helper()
		s, err := open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		return s
	}
	return map[string]func(t *testing.T) S{
		"sqlite": func(t *testing.T) S {
			return start(t, storage.Location{Dialect: storage.SQLite, Path: filepath.Join(t.TempDir(), "store.db")})
		},
		"postgres": func(t *testing.T) S {
			_, url := pgtest.Database(t)
			return start(t, storage.Location{Dialect: storage.Postgres, URL: url})
		},
	}
}
