package examples

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/deploycheck"
	"github.com/mediaguard/mediaguard/internal/e2e"
)

const nginxConfPath = "tls-front/nginx.conf"

// findNginx returns the nginx binary: on PATH, in /usr/sbin (not on a
// user's PATH), or unpacked by .ci/run.
func findNginx(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	e2e.SkipOrFail(t, "nginx not found: examples/tls-front/nginx.conf was not checked with `nginx -t`",
		"install it (apt-get install nginx-light), or unpack it without starting a daemon as .ci/run does:\n"+
			"apt-get download nginx && dpkg-deb -x nginx_*.deb DIR && export PATH=DIR/usr/sbin:$PATH")
	return ""
}

// selfSigned writes a certificate and key for name into dir.
func selfSigned(t *testing.T, dir, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return cert, key
}

// nginx itself accepts nginx.conf: `nginx -t` parses it and loads its
// certificates. The copy tested differs only in where files are (a
// generated certificate instead of Let's Encrypt's, logs and nginx's
// temporary files in a temporary directory).
func TestNginxConf(t *testing.T) {
	nginx := findNginx(t)
	b, err := os.ReadFile(nginxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := selfSigned(t, dir, "matrix.example.org")
	conf := string(b)
	for old, new := range map[string]string{
		"/etc/letsencrypt/live/matrix.example.org/fullchain.pem": cert,
		"/etc/letsencrypt/live/matrix.example.org/privkey.pem":   key,
		"/var/log/nginx/matrix.access.log":                       filepath.Join(dir, "access.log"),
		"\nhttp {\n": "\nhttp {\n\t" + strings.Join([]string{
			"client_body_temp_path " + filepath.Join(dir, "body") + ";",
			"proxy_temp_path " + filepath.Join(dir, "proxy") + ";",
			"fastcgi_temp_path " + filepath.Join(dir, "fastcgi") + ";",
			"uwsgi_temp_path " + filepath.Join(dir, "uwsgi") + ";",
			"scgi_temp_path " + filepath.Join(dir, "scgi") + ";",
		}, " ") + "\n",
	} {
		if strings.Count(conf, old) != 1 {
			t.Fatalf("nginx.conf: want %q exactly once", old)
		}
		conf = strings.Replace(conf, old, new, 1)
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir+"/", "-c", path,
		"-g", "error_log stderr; pid "+filepath.Join(dir, "nginx.pid")+";").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "[warn]") {
		t.Errorf("nginx -t warns:\n%s", out)
	}
}

// What nginx.conf must keep to front mediaguard correctly, read from the
// file itself: the upstream is mediaguard.socket's first socket, the URI
// goes through as sent, uploads stream, and the body limit is not below
// mediaguard's own (which answers in Matrix's error shape).
func TestNginxConfFrontsMediaguard(t *testing.T) {
	b, err := os.ReadFile(nginxConfPath)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	sock, err := deploycheck.ReadUnit(socketPath)
	if err != nil {
		t.Fatal(err)
	}
	listen := sock.Words("Socket", "ListenStream")
	if len(listen) == 0 {
		t.Fatal("mediaguard.socket listens nowhere")
	}
	for _, tc := range []struct{ re, why string }{
		{`(?m)^\s*server ` + regexp.QuoteMeta(listen[0]) + `;`, "the upstream is mediaguard.socket's first socket (fd 3, the proxy)"},
		{`(?m)^\s*proxy_pass http://mediaguard;`, "proxy_pass without a URI passes the request URI unchanged"},
		{`(?m)^\s*proxy_request_buffering off;`, "uploads stream to mediaguard, which spools them itself"},
		{`(?m)^\s*client_max_body_size 100M;`, "above mediaguard's max_upload_size 100MB, so mediaguard answers 413 M_TOO_LARGE"},
		{`(?m)^\s*location /_synapse/admin \{\s*return 404;`, "Synapse's admin API stays off the Internet"},
	} {
		if !regexp.MustCompile(tc.re).MatchString(conf) {
			t.Errorf("nginx.conf lacks %s: %s", tc.re, tc.why)
		}
	}
	if regexp.MustCompile(`(?m)^\s*keepalive \d+;`).MatchString(conf) {
		t.Error("nginx.conf keeps upstream connections alive: a restart of mediaguard could drop a request sent on one it is closing")
	}
	// The access log: a format of its own (nginx's default, combined,
	// logs $request, query string included), without the query string,
	// which may hold ?access_token=.
	logs := regexp.MustCompile(`(?m)^\s*access_log (\S+)(?: (\S+))?;`).FindAllStringSubmatch(conf, -1)
	if len(logs) == 0 {
		t.Error("nginx.conf sets no access_log: nginx's default logs the query string")
	}
	for _, l := range logs {
		if l[1] == "off" {
			continue
		}
		format := regexp.MustCompile(`(?s)log_format ` + regexp.QuoteMeta(l[2]) + ` (.*?);`).FindStringSubmatch(conf)
		if l[2] == "" || format == nil {
			t.Errorf("access_log %s: no format of this file's own (the default, combined, logs the query string)", l[1])
			continue
		}
		if regexp.MustCompile(`\$(request|request_uri|args|query_string|arg_\w+)\b`).MatchString(format[1]) {
			t.Errorf("log_format %s logs the query string, which may hold ?access_token=", l[2])
		}
	}
}
