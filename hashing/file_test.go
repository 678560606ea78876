package hashing

import (
	"bytes"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"os"
	"path/filepath"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// The CLI hashes as the proxy does: an animation's later frames are
// listed as forms; --reference (Viewed off) keeps to the first frame.
func TestHashFileForms(t *testing.T) {
	var frames []*image.Paletted
	for seed := range 2 {
		img := testimg.Photo(seed+30, 96, 96)
		pm := image.NewPaletted(img.Bounds(), palette.Plan9)
		draw.Draw(pm, img.Bounds(), img, image.Point{}, draw.Src)
		frames = append(frames, pm)
	}
	var b bytes.Buffer
	if err := gif.EncodeAll(&b, &gif.GIF{Image: frames, Delay: []int{10, 10}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "anim.gif")
	os.WriteFile(path, b.Bytes(), 0o600)
	viewed, err := HashFile(path, FileOptions{Decode: pdq.DecodeOptions{Viewed: true}})
	if err != nil || len(viewed.Forms) != 1 || viewed.Forms[0].Name != "frame 2" {
		t.Fatalf("viewed: %+v %v", viewed, err)
	}
	ref, err := HashFile(path, FileOptions{})
	if err != nil || ref.PDQ != viewed.PDQ || len(ref.Forms) != 0 {
		t.Fatalf("reference: %+v %v (viewed pdq %s)", ref, err, viewed.PDQ)
	}
}
