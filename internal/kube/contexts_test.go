package kube

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: staging
  context: {cluster: c, user: u}
- name: prod
  context: {cluster: c, user: u}
current-context: staging
`

func TestContexts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Contexts(path)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"prod", "staging"}) {
		t.Fatalf("Contexts = %v", got)
	}
	if _, err := Contexts(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("a missing explicit kubeconfig gave no error")
	}
}
