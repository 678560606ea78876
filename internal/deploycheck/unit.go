package deploycheck

import (
	"bufio"
	"fmt"
	"os"
	"strings"
)

// Unit is a systemd unit file: section -> key -> values, in order.
type Unit map[string]map[string][]string

// ReadUnit reads the unit file at path. A key given more than once
// accumulates its values, each line's words split on whitespace for the
// list-valued keys that take several (ReadWritePaths=, StateDirectory=,
// ListenStream= ...); an empty assignment resets the list, as systemd does
// (https://www.freedesktop.org/software/systemd/man/latest/systemd.syntax.html).
// An empty assignment is kept as the single value "", so a key set empty
// (CapabilityBoundingSet=) is told from one never set.
func ReadUnit(path string) (Unit, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	u := Unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			continue
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if u[section] == nil {
				u[section] = map[string][]string{}
			}
			continue
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("%s:%d: line continuations are not read here", path, n)
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE in a section: %q", path, n, line)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if value == "" {
			u[section][key] = []string{""}
			continue
		}
		if cur := u[section][key]; len(cur) == 1 && cur[0] == "" {
			u[section][key] = nil
		}
		u[section][key] = append(u[section][key], value)
	}
	return u, sc.Err()
}

// Get returns the last value of key in section and whether it is set.
func (u Unit) Get(section, key string) (string, bool) {
	v := u[section][key]
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// Words returns every whitespace-separated word of every value of key in
// section, for list-valued keys.
func (u Unit) Words(section, key string) []string {
	var out []string
	for _, v := range u[section][key] {
		out = append(out, strings.Fields(v)...)
	}
	return out
}
