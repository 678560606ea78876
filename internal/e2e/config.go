package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
)

// setYAML sets scalar values in YAML as emitted by generate-config (block
// style, two-space indent, one "key: value" per line), addressed by dotted
// paths; list items count as their parent ("logging.level" is the level of
// every entry of logging). Every path must occur: a missing one means the
// format changed and is an error rather than a silently ignored setting.
func setYAML(doc []byte, values map[string]string) ([]byte, error) {
	type frame struct {
		indent int
		key    string
	}
	var stack []frame
	seen := map[string]bool{}
	lines := strings.Split(string(doc), "\n")
	for i, line := range lines {
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(trimmed)
		for strings.HasPrefix(trimmed, "- ") { // list item: its keys sit deeper
			trimmed = trimmed[2:]
			indent += 2
		}
		key, val, ok := strings.Cut(trimmed, ":")
		if !ok || strings.ContainsAny(key, " \"'") {
			continue
		}
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		parts := make([]string, 0, len(stack)+1)
		for _, f := range stack {
			parts = append(parts, f.key)
		}
		path := strings.Join(append(parts, key), ".")
		if strings.TrimSpace(val) == "" {
			stack = append(stack, frame{indent, key})
			continue
		}
		if v, ok := values[path]; ok {
			q, _ := json.Marshal(v) // a JSON string is a valid YAML double-quoted scalar
			if v == "true" || v == "false" || isDigits(v) {
				q = []byte(v)
			}
			lines[i] = line[:len(line)-len(trimmed)] + key + ": " + string(q) // keeps indent and "- "
			seen[path] = true
		}
	}
	var missing []string
	for p := range values {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("keys not found: %s", strings.Join(missing, ", "))
	}
	return []byte(strings.Join(lines, "\n")), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
