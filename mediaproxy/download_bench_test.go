package mediaproxy

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkDownloadUnknown is the proxy's own cost per download of media
// it has not judged before, without PDQ (an opaque body is matched by its
// exact digests only): through httputil's reverse proxy to the fake
// Synapse, spooled, digested, matched and released.
func BenchmarkDownloadUnknown(b *testing.B) {
	for _, size := range []int{64 << 10, 512 << 10, 4 << 20} {
		b.Run(strconv.Itoa(size>>10)+"KiB", func(b *testing.B) {
			e := newEnv(b, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
			body := bytes.Repeat([]byte{0x5a, 0xa5, 0x3c}, size/3)
			for i := range b.N {
				e.up.Put("m"+strconv.Itoa(i), body, "application/octet-stream")
			}
			client := e.front.Client()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				resp, err := client.Get(e.front.URL + "/_matrix/media/v3/download/hs.example/m" + strconv.Itoa(i))
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n != int64(len(body)) {
					b.Fatalf("%d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}
