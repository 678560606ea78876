package hashing

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
)

// Report is everything mediaguard computes for one file, with the JSON keys
// the `caddy mediaguard hash --json` output promises.
type Report struct {
	File       string   `json:"file"`
	MD5        string   `json:"md5"`
	SHA1       string   `json:"sha1"`
	SHA256     string   `json:"sha256"`
	PDQ        string   `json:"pdq"`
	PDQQuality int      `json:"pdq_quality"`
	Dihedral   []string `json:"dihedral,omitempty"`
	// Forms are the other ways the picture is shown (frames, orientation
	// applied, transparency composited, video frames), each matched.
	Forms []FormReport `json:"forms,omitempty"`
	// Error says why there is no PDQ (not an image, corrupt, too large).
	Error string `json:"error,omitempty"`
}

// FormReport is one further form of the media and its PDQ hash.
type FormReport struct {
	Name string `json:"name"`
	// Variant is the form's kind, one of pdq's Variant kinds ("frame",
	// "displayed", "quadrant", ...): what a match of it is reported as.
	Variant    string `json:"variant"`
	PDQ        string `json:"pdq"`
	PDQQuality int    `json:"pdq_quality"`
}

// VariantReport is one PDQ hash of a file with its kind: a line of
// `caddy mediaguard hash --variants --json`, flat so each hash can be
// grepped and banked on its own.
type VariantReport struct {
	File string `json:"file"`
	// Name says which form ("" for the picture as stored).
	Name string `json:"name"`
	// Variant is the kind: "stored" for the picture as stored, else one
	// of pdq's Variant kinds.
	Variant    string `json:"variant"`
	PDQ        string `json:"pdq"`
	PDQQuality int    `json:"pdq_quality"`
}

// Variants lists every PDQ hash of the report, the picture as stored
// first; none when the file had no PDQ hash.
func (r Report) Variants() []VariantReport {
	if r.PDQ == "" {
		return nil
	}
	out := make([]VariantReport, 0, 1+len(r.Forms))
	out = append(out, VariantReport{File: r.File, Variant: pdq.VariantStored, PDQ: r.PDQ, PDQQuality: r.PDQQuality})
	for _, f := range r.Forms {
		out = append(out, VariantReport{File: r.File, Name: f.Name, Variant: f.Variant, PDQ: f.PDQ, PDQQuality: f.PDQQuality})
	}
	return out
}

// FileOptions choose the PDQ convention and limits for HashFile.
type FileOptions struct {
	PDQ    pdq.Options
	Decode pdq.DecodeOptions
}

// HashFile hashes a file on disk. An error is returned only when the file
// cannot be read; a file that is not a decodable image still gets its exact
// digests, with the reason in Report.Error.
func HashFile(path string, opt FileOptions) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return Report{}, fmt.Errorf("%s is a directory", path)
	}
	return HashReadSeeker(path, f, opt)
}

// HashReadSeeker hashes r (a spool file or an in-memory body): exact digests
// in one pass, then PDQ from the start.
func HashReadSeeker(name string, r io.ReadSeeker, opt FileOptions) (Report, error) {
	d := NewDigester()
	if _, err := io.Copy(d, r); err != nil {
		d.Close()
		return Report{}, err
	}
	sums := d.Sum()
	rep := Report{File: name, MD5: sums.MD5Hex(), SHA1: sums.SHA1Hex(), SHA256: sums.SHA256Hex()}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return rep, err
	}
	hash := pdq.HashReader
	if opt.Decode.Viewed {
		// As the proxy does: every format and form a viewer sees.
		hash = worker.HashViewed
	}
	res, _, err := hash(r, opt.Decode, opt.PDQ)
	if err != nil {
		if !errors.Is(err, pdq.ErrNotImage) && !errors.Is(err, pdq.ErrCorrupt) && !errors.Is(err, pdq.ErrTooManyPixels) {
			return rep, err
		}
		rep.Error = err.Error()
		return rep, nil
	}
	rep.PDQ = res.Hash.String()
	rep.PDQQuality = res.Quality
	if res.Dihedral != nil {
		rep.Dihedral = make([]string, 8)
		for i, h := range res.Dihedral {
			rep.Dihedral[i] = h.String()
		}
	}
	for _, f := range res.Forms {
		rep.Forms = append(rep.Forms, FormReport{Name: f.Name, Variant: f.Variant, PDQ: f.Hash.String(), PDQQuality: f.Quality})
	}
	return rep, nil
}
