package deploycheck

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Instruction is one Dockerfile instruction.
type Instruction struct {
	// Cmd is the instruction, upper case: FROM, COPY, ENTRYPOINT, ...
	Cmd string
	// Flags are the --name=value options before the arguments (COPY
	// --chown=65532:65532 gives {"chown": "65532:65532"}).
	Flags map[string]string
	// Args are the arguments: the elements of the JSON (exec) form, or
	// the whitespace-separated words of the shell form.
	Args []string
	// JSON reports whether the arguments were written in the JSON form.
	JSON bool
	// Stage counts the FROM lines before this one, from 0: the final
	// stage's instructions have the highest Stage.
	Stage int
	// Line is where the instruction starts, from 1.
	Line int
}

// Dockerfile reads the instructions of the Dockerfile at path. Comments
// (parser directives included) and blank lines are dropped, and lines
// ending in a backslash are joined, as Docker's own parser does
// (https://docs.docker.com/reference/dockerfile/#format).
func Dockerfile(path string) ([]Instruction, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out     []Instruction
		pending strings.Builder
		start   int
		stage   = -1
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && pending.Len() == 0) {
			continue
		}
		if pending.Len() == 0 {
			start = n
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending.WriteString(cont + " ")
			continue
		}
		pending.WriteString(line)
		in, err := parseInstruction(pending.String(), start)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, start, err)
		}
		pending.Reset()
		if in.Cmd == "FROM" {
			stage++
		}
		if stage < 0 {
			return nil, fmt.Errorf("%s:%d: %s before the first FROM", path, start, in.Cmd)
		}
		in.Stage = stage
		out = append(out, in)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if pending.Len() != 0 {
		return nil, fmt.Errorf("%s:%d: continuation at end of file", path, start)
	}
	return out, nil
}

func parseInstruction(s string, line int) (Instruction, error) {
	cmd, rest, _ := strings.Cut(s, " ")
	in := Instruction{Cmd: strings.ToUpper(cmd), Flags: map[string]string{}, Line: line}
	rest = strings.TrimSpace(rest)
	for strings.HasPrefix(rest, "--") {
		var flag string
		flag, rest, _ = strings.Cut(rest, " ")
		rest = strings.TrimSpace(rest)
		name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		in.Flags[name] = value
	}
	if strings.HasPrefix(rest, "[") {
		if err := json.Unmarshal([]byte(rest), &in.Args); err != nil {
			return in, fmt.Errorf("%s: JSON form: %w", in.Cmd, err)
		}
		in.JSON = true
		return in, nil
	}
	in.Args = strings.Fields(rest)
	return in, nil
}

// Final returns the instructions of the last stage (the image built when
// no --target is given).
func Final(ins []Instruction) []Instruction {
	if len(ins) == 0 {
		return nil
	}
	last := ins[len(ins)-1].Stage
	var out []Instruction
	for _, in := range ins {
		if in.Stage == last {
			out = append(out, in)
		}
	}
	return out
}

// Find returns the instructions named cmd among ins.
func Find(ins []Instruction, cmd string) []Instruction {
	var out []Instruction
	for _, in := range ins {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}
