package render

import "testing"

// BenchmarkRender renders the four bundled services with every optional API,
// the work of one `msctl render`.
func BenchmarkRender(b *testing.B) {
	p := bundled(&testing.T{})
	for b.Loop() {
		res, err := Render(p, Options{APIVersions: monitoringAPIs})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := res.YAML(); err != nil {
			b.Fatal(err)
		}
	}
}
