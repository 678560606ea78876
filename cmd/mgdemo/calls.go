package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// call is one request a user pastes: it renders as a curl command line and
// -check runs exactly that line (or, without sh and curl, the same request
// through Go), so what the banner prints is what the check proves.
// URLs and the bearer token refer to shell variables ($MG, $ALICE_TOKEN,
// ...), set by the banner's export line.
type call struct {
	title    string // a comment: what it does and what to expect
	url      string // may hold $VARIABLES
	token    string // the variable holding the bearer token, if any
	ctype    string // Content-Type of the body
	file     string // the body: this file (POST)
	data     string // the body: this JSON (POST)
	output   string // write the answer's body to this file
	capture  string // set this variable to the content_uri's server/ID
	want     int    // the status the check requires
	wantBody string // and a string its output must hold
	notice   bool   // and a notice naming the user in the management room
}

// statusFormat is curl's -w: the status after the answer, so a 403 shows.
const (
	statusFormat   = ` HTTP %{http_code}\n`
	downloadFormat = `HTTP %{http_code}, %{size_download} bytes\n`
)

// render is the call's command line for sh.
func (c call) render() string {
	args := []string{"curl", "-sS"}
	if c.output != "" {
		args = append(args, "-o", shellQuote(c.output), "-w", shellQuote(downloadFormat))
	} else {
		args = append(args, "-w", shellQuote(statusFormat))
	}
	if c.token != "" {
		args = append(args, "-H", `"Authorization: Bearer $`+c.token+`"`)
	}
	if c.ctype != "" {
		args = append(args, "-H", shellQuote("Content-Type: "+c.ctype))
	}
	if c.file != "" {
		args = append(args, "--data-binary", "@"+shellQuote(c.file))
	}
	if c.data != "" {
		args = append(args, "-d", shellQuote(c.data))
	}
	args = append(args, `"`+c.url+`"`) // double quotes: the variables expand
	line := strings.Join(args, " ")
	if c.capture != "" {
		// Show the answer (on stderr) and keep what follows mxc://.
		line = c.capture + "=$(" + line + ` | tee /dev/stderr | sed -n 's|.*"mxc://\([^"]*\)".*|\1|p') && echo "` + c.capture + `=$` + c.capture + `"`
	}
	return line
}

// shellQuote quotes s for sh, in single quotes unless it needs none.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// result is what running a call showed and the status it got.
type result struct {
	output string // what the user would see in the terminal
	status int    // 0 when none could be read
}

var (
	statusRE  = regexp.MustCompile(`HTTP (\d{3})`)
	captureRE = regexp.MustCompile(`(?m)^([A-Z_]+)=(\S*)$`)
	shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)
)

// runShell runs the rendered line with sh, vars in its environment; the
// variable the call captures is stored back into vars.
func (c call) runShell(ctx context.Context, vars map[string]string) (result, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", c.render())
	cmd.Env = os.Environ()
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	res := result{output: out.String()}
	if m := statusRE.FindAllStringSubmatch(res.output, -1); len(m) > 0 {
		res.status, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if c.capture != "" {
		for _, m := range captureRE.FindAllStringSubmatch(res.output, -1) {
			if m[1] == c.capture {
				vars[c.capture] = m[2]
			}
		}
	}
	if err != nil {
		return res, fmt.Errorf("sh -c: %v", err)
	}
	return res, nil
}

// runGo sends the same request through Go's HTTP client, for machines
// without sh or curl, and shows what curl would have shown.
func (c call) runGo(ctx context.Context, vars map[string]string) (result, error) {
	expand := func(s string) string { return os.Expand(s, func(k string) string { return vars[k] }) }
	method, body := http.MethodGet, io.Reader(nil)
	switch {
	case c.file != "":
		b, err := os.ReadFile(c.file)
		if err != nil {
			return result{}, err
		}
		method, body = http.MethodPost, bytes.NewReader(b)
	case c.data != "":
		method, body = http.MethodPost, strings.NewReader(c.data)
	}
	req, err := http.NewRequestWithContext(ctx, method, expand(c.url), body)
	if err != nil {
		return result{}, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+vars[c.token])
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return result{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return result{}, err
	}
	res := result{status: resp.StatusCode}
	if c.output != "" {
		if err := os.WriteFile(c.output, b, 0o600); err != nil {
			return res, err
		}
		res.output = fmt.Sprintf("HTTP %d, %d bytes\n", resp.StatusCode, len(b))
		return res, nil
	}
	res.output = fmt.Sprintf("%s HTTP %d\n", bytes.TrimSpace(b), resp.StatusCode)
	if c.capture != "" {
		var r struct {
			ContentURI string `json:"content_uri"`
		}
		_ = json.Unmarshal(b, &r)
		vars[c.capture] = strings.TrimPrefix(r.ContentURI, "mxc://")
		res.output += c.capture + "=" + vars[c.capture] + "\n"
	}
	return res, nil
}

// calls are the lines the banner prints, in order.
func (w *world) calls() []call {
	alice := w.users[0]
	return []call{
		{
			title: "1. " + alice.ID + " uploads the listed demo picture: refused with M_FORBIDDEN, HTTP 403,\n" +
				"#    and a notice arrives in the management room",
			url: "$MG/_matrix/media/v3/upload?filename=demo-listed.png", token: "ALICE_TOKEN",
			ctype: "image/png", file: w.in.listed,
			want: http.StatusForbidden, wantBody: `"M_FORBIDDEN"`, notice: true,
		},
		{
			title: "2. " + alice.ID + " uploads a picture nothing lists: stored, HTTP 200 and a content_uri\n" +
				"#    (MEDIA keeps its server/ID for the next line)",
			url: "$MG/_matrix/media/v3/upload?filename=clean.png", token: "ALICE_TOKEN",
			ctype: "image/png", file: w.cleanPath, capture: "MEDIA",
			want: http.StatusOK, wantBody: `"content_uri":"mxc://`,
		},
		{
			title: "3. download it again, judged clean on the way out: HTTP 200, the bytes uploaded",
			url:   "$MG/_matrix/client/v1/media/download/$MEDIA", token: "ALICE_TOKEN",
			output: w.downloadPath(),
			want:   http.StatusOK,
		},
		{
			title: "4. ask the lookup API (what Mjolnir's HMA plugin calls) about the listed picture's SHA-256:\n" +
				`#    {"action":"block",...}`,
			url: "$LOOKUP/", token: "LOOKUP_KEY",
			ctype: "application/json", data: `{"hashes":{"sha256":"` + w.in.listedHash + `"}}`,
			want: http.StatusOK, wantBody: `"action":"block"`,
		},
	}
}

// shellVars are the variables the lines use: the export line sets them.
func (w *world) shellVars() [][2]string {
	return [][2]string{
		{"MG", w.front},
		{"LOOKUP", w.lookup},
		// The demo's own throwaway account and key, on loopback for as
		// long as the demo runs: printed so the lines can be pasted.
		{"ALICE_TOKEN", w.users[0].AccessToken},
		{"LOOKUP_KEY", w.lookupKey},
	}
}

// exportLine sets shellVars in a shell.
func (w *world) exportLine() string {
	var parts []string
	for _, kv := range w.shellVars() {
		parts = append(parts, kv[0]+"="+shellQuote(kv[1]))
	}
	return "export " + strings.Join(parts, " ")
}
