package config

import (
	"errors"
	"strings"
	"testing"
)

func TestKeysFor(t *testing.T) {
	src := strings.Replace(minimal, "  - name: order\n", "  - name: order\n    keys: {secret: order-keys, apiKeys: k.json, downstreamApiKey: out}\n", 1) +
		"keys: {secret: shop-keys, apiKeys: api-keys.json}\n"
	l, err := Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Project
	if k := p.KeysFor(p.Service("user")); k == nil || k.Secret != "shop-keys" {
		t.Errorf("user's keys = %+v, want the project's", k)
	}
	k := p.KeysFor(p.Service("order"))
	if k == nil || k.Secret != "order-keys" {
		t.Fatalf("order's keys = %+v, want its own", k)
	}
	files := k.Files()
	if files["AUTH_API_KEYS_FILE"] != "k.json" || files["DOWNSTREAM_API_KEY_FILE"] != "out" || len(files) != 2 {
		t.Errorf("files = %v", files)
	}
}

func TestUnsafeEnv(t *testing.T) {
	src := strings.Replace(minimal, "  - name: user\n", "  - name: user\n    env: {LOG_LEVEL: info, FAULT_DELAY: 1s, AUTH_DEV_MODE: \"true\"}\n", 1)
	l, err := Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = l.UnsafeEnv()
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 2 {
		t.Fatalf("got %v, want two problems", err)
	}
	want := []string{
		`msctl.yaml:6:60: services[0].env.AUTH_DEV_MODE: is unsafe in a deployed service (dev mode signs tokens with a key made at start-up and logs a 24-hour admin token); remove it or pass --allow-unsafe-env`,
		`msctl.yaml:6:41: services[0].env.FAULT_DELAY: is unsafe in a deployed service (fault injection fails or delays real requests); remove it or pass --allow-unsafe-env`,
	}
	for i, w := range want {
		if got := cerr.Problems[i].String(); got != w {
			t.Errorf("problem %d\n got: %s\nwant: %s", i, got, w)
		}
	}
	if ok, _ := Parse("msctl.yaml", []byte(minimal), nil); ok.UnsafeEnv() != nil {
		t.Error("a project without unsafe variables is refused")
	}
}
