package matcher

import (
	"strings"
	"testing"
)

func TestBankProblemsBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("md5 " + tMD5 + "\n")
	for i := 0; i < 1000; i++ {
		sb.WriteString("bad\n")
	}
	b, err := ParseBank("TEST", "many.txt", strings.NewReader(sb.String()), FormatText)
	if err != nil {
		t.Fatal(err)
	}
	if b.ProblemCount() != 1000 || len(b.Problems()) != maxKeptProblems {
		t.Errorf("problems = %d kept %d", b.ProblemCount(), len(b.Problems()))
	}
}
