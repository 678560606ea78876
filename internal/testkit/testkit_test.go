package testkit

import (
	"errors"
	"testing"

	"go.uber.org/zap"
)

func TestLogLines(t *testing.T) {
	log, logs := ObserveLogs()
	log.Debug("not recorded")
	log.Info("bank loaded", zap.String("bank", "HOT"), zap.Int("md5", 3))
	log.Warn("reload failed", zap.Strings("banks", []string{"A", "B"}), zap.Error(errors.New("gone")))
	want := "INFO bank loaded bank HOT md5 3\nWARN reload failed banks [A B] error gone"
	if got := LogText(logs); got != want {
		t.Errorf("LogText = %q, want %q", got, want)
	}
	if n := LogCount(logs, "bank"); n != 2 {
		t.Errorf("LogCount(bank) = %d, want 2", n)
	}
}
