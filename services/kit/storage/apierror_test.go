package storage

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestAPIError(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		err    error
		code   codes.Code
		msg    string
		logged bool
	}{
		{"the caller gave up", cancelled, context.Canceled, codes.Canceled, "", false},
		{"a timeout inside a live call", context.Background(), context.DeadlineExceeded, codes.Unavailable, "retry later", true},
		{"anything else", context.Background(), errors.New("pq: disk full"), codes.Unavailable, "retry later", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(logs.String())
			err := APIError(tc.ctx, logger, "storage error", tc.err, "retry later")
			if st := status.Convert(err); st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) || strings.Contains(st.Message(), "disk full") {
				t.Fatalf("%v, want %v %q without internals", err, tc.code, tc.msg)
			}
			if logged := len(logs.String()) > before; logged != tc.logged {
				t.Fatalf("logged %v, want %v", logged, tc.logged)
			}
		})
	}
}
