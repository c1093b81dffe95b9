// Package pgtest gives tests a fresh PostgreSQL database on the server at
// PGTEST_URL (default postgres://postgres@127.0.0.1:5432/postgres, trust
// auth), dropped when the test ends. An unreachable server fails the test:
// a skipped database test would pass CI without testing anything. Only
// `go test -short` skips it, unless MSCTL_REQUIRE_INTEGRATION=1 (set by
// make test and CI), as msctl's own fast tier does.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// AdminURL is the maintenance database tests connect to for CREATE and
// DROP DATABASE.
func AdminURL() string {
	if u := os.Getenv("PGTEST_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Database creates an empty database and returns its name and URL.
func Database(t testing.TB) (name, dbURL string) {
	t.Helper()
	if testing.Short() && os.Getenv("MSCTL_REQUIRE_INTEGRATION") != "1" {
		t.Skip("needs PostgreSQL: skipped under -short (run without -short, or set MSCTL_REQUIRE_INTEGRATION=1)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin := AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: PostgreSQL is not reachable at %s (run make deps): %v", redact(admin), err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	_, _ = rand.Read(b[:])
	name = "msctl_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() { Drop(t, name) })
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("pgtest: PGTEST_URL: %v", err)
	}
	u.Path = "/" + name
	return name, u.String()
}

// Drop removes a database, cutting off any connections still open to it.
func Drop(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Errorf("pgtest: drop %s: %v", name, err)
	}
}

// Exec runs one statement on the maintenance database, for tests that
// change a database from outside (block connections, terminate sessions).
func Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(PGTEST_URL)"
	}
	return u.Redacted()
}
