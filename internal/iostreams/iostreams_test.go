package iostreams

import "testing"

func TestColorNeedsATerminalAndNoOptOut(t *testing.T) {
	tests := []struct {
		name    string
		tty     bool
		disable bool
		want    bool
	}{
		{"terminal", true, false, true},
		{"pipe", false, false, false},
		{"terminal with --no-color", true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, _, _ := Test()
			s.SetTTY(tt.tty)
			if tt.disable {
				s.DisableColor()
			}
			if got := s.ColorEnabled(); got != tt.want {
				t.Errorf("ColorEnabled() = %v, want %v", got, tt.want)
			}
			if got := s.CanPrompt(); got != tt.tty {
				t.Errorf("CanPrompt() = %v, want %v", got, tt.tty)
			}
		})
	}
}

func TestSystemHonoursNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	s := System()
	s.SetTTY(true)
	if s.ColorEnabled() {
		t.Fatal("colour enabled despite NO_COLOR")
	}
}
