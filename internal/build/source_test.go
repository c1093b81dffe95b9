package build

import "testing"

func TestWebURLIsTheSameHoweverTheRepositoryWasCloned(t *testing.T) {
	for remote, want := range map[string]string{
		"https://github.com/acme/shop.git":        "https://github.com/acme/shop",
		"https://user:token@github.com/acme/shop": "https://github.com/acme/shop",
		"git@github.com:acme/shop.git":            "https://github.com/acme/shop",
		"ssh://git@github.com/acme/shop.git":      "https://github.com/acme/shop",
		"/work/shop":                              "",
		"../shop":                                 "",
	} {
		if got := webURL(remote); got != want {
			t.Errorf("webURL(%q) = %q, want %q", remote, got, want)
		}
	}
}
