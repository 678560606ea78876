package caddymodule

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "mediaguard",
		Usage: "hash [--json] [--dihedral] [--resize512] [--variants [--deep]] FILE... | audit [--since T] [--json] | doctor [--config FILE] | backfill --synapse-media-store DIR [--act]",
		Short: "mediaguard tools: hash media the way the proxy does, read the audit log, check a deployment",
		Long: `Tools for operators of mediaguard, the Matrix media scanner.

  mediaguard hash FILE...   print md5, sha1, sha256, pdq and pdq_quality of
                            each file, exactly as the proxy computes them, so
                            bank entries can be made and checked by hand.
  mediaguard audit          list the durable audit records (blocks,
                            unscannable and fail-open decisions, actions).
  mediaguard doctor         check a deployment (config, banks, homeserver,
                            bot, admin token, backends, paths) and print a
                            checklist; exits 1 if a check fails.
  mediaguard backfill       judge the media a Synapse homeserver already
                            stores into the ledger (a dry run unless --act).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(hashCommand(), auditCommand(), doctorCommand(), backfillCommand())
		},
	})
}

func hashCommand() *cobra.Command {
	var asJSON, dihedral, resize512, reference, exact, variants, deep bool
	var maxPixels int
	c := &cobra.Command{
		Use:   "hash [--json] [--dihedral] [--resize512] [--exact] [--variants [--deep]] FILE...",
		Short: "Print the digests and PDQ hash of each file",
		Long: `Prints md5, sha1, sha256, pdq (64 hex) and pdq_quality for each FILE.
A file that is not a decodable image gets its exact digests, an empty pdq and
an error. With --json, one JSON object per line with the keys file, md5, sha1,
sha256, pdq, pdq_quality, dihedral (with --dihedral), forms and error. Files
are decoded as the proxy decodes them (every format, frame and form a viewer
sees: forms lists the frames, the displayed orientation and transparency
composited); pdq is the picture as stored. A JPEG is hashed from its DCT
blocks as the proxy hashes it by default; --exact decodes its pixels first, as
the proxy does with pdq_exact (within 4 bits for 99% of photos). Use the one
the proxy uses for bank entries that match exactly. --reference decodes with
Go's standard decoders only, the convention of the PDQ test vectors. PDQ is
computed at full resolution like HMA; --resize512 uses the reference
command-line tool's 512×512 pre-resize instead.

--variants also hashes the variants the proxy searches by default
(pdq_search default: borders trimmed, caption bars peeled, gaps removed,
quadrants, negative, contrast stretched), --deep those of pdq_search deep too
(windows, rotations), and prints one line per hash with its kind (stored,
frame, quadrant, ...); with --json, one object per hash, the picture as stored
first, with the keys file, name, variant, pdq and pdq_quality (and error for a
file without one).

Exits 1 if any file could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opt := hashing.FileOptions{
				PDQ:    pdq.Options{Dihedral: dihedral, Resize512: resize512},
				Decode: pdq.DecodeOptions{MaxPixels: maxPixels, Viewed: !reference, Exact: exact},
			}
			variants = variants || deep
			if variants {
				// The proxy's own default, so what is printed is what it
				// matches unless pdq_search says otherwise.
				opt.PDQ.Search = pdq.SearchDefault
				if deep {
					opt.PDQ.Search = pdq.SearchDeep
				}
			}
			if failed := runHash(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, opt, asJSON, variants); failed > 0 {
				cmd.SilenceUsage = true
				return fmt.Errorf("%d of %d files could not be read", failed, len(args))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON object per line")
	c.Flags().BoolVar(&reference, "reference", false, "decode with Go's standard decoders only (the PDQ test vectors' convention)")
	c.Flags().BoolVar(&exact, "exact", false, "hash JPEGs from their decoded pixels, the reference convention bit for bit (the proxy's pdq_exact), not from their DCT blocks")
	c.Flags().BoolVar(&dihedral, "dihedral", false, "also print the 8 dihedral PDQ hashes (original, rotate90, rotate180, rotate270, flipX, flipY, flipPlus1, flipMinus1)")
	c.Flags().BoolVar(&resize512, "resize512", false, "pre-resize images larger than 512 px to 512×512 like the reference CLI")
	c.Flags().IntVar(&maxPixels, "max-pixels", pdq.DefaultMaxPixels, "refuse images with more pixels than this")
	c.Flags().BoolVar(&variants, "variants", false, "also hash the variants pdq_search default adds and print every hash with its kind")
	c.Flags().BoolVar(&deep, "deep", false, "with --variants, the variants of pdq_search deep (windows, rotations) too")
	return c
}

// variantLine is a line of hash --variants --json.
type variantLine struct {
	hashing.VariantReport
	Error string `json:"error,omitempty"`
}

// runHash writes one report per file (with variants, one line per hash)
// and returns how many files failed.
func runHash(stdout, stderr io.Writer, files []string, opt hashing.FileOptions, asJSON, variants bool) (failed int) {
	enc := json.NewEncoder(stdout)
	for _, f := range files {
		rep, err := hashing.HashFile(f, opt)
		if err != nil {
			fmt.Fprintf(stderr, "mediaguard hash: %v\n", err)
			failed++
			continue
		}
		if asJSON && variants {
			if rep.Error != "" {
				enc.Encode(variantLine{VariantReport: hashing.VariantReport{File: rep.File}, Error: rep.Error})
			}
			for _, v := range rep.Variants() {
				enc.Encode(variantLine{VariantReport: v})
			}
			continue
		}
		if asJSON {
			enc.Encode(rep)
			continue
		}
		fmt.Fprintf(stdout, "%s\n  md5          %s\n  sha1         %s\n  sha256       %s\n", rep.File, rep.MD5, rep.SHA1, rep.SHA256)
		if rep.Error != "" {
			fmt.Fprintf(stdout, "  pdq          -\n  error        %s\n", rep.Error)
			continue
		}
		fmt.Fprintf(stdout, "  pdq          %s\n  pdq_quality  %d\n", rep.PDQ, rep.PDQQuality)
		for i, h := range rep.Dihedral {
			fmt.Fprintf(stdout, "  %-12s %s\n", pdq.DihedralNames[i], h)
		}
		if variants {
			for _, v := range rep.Variants() {
				name := ""
				if v.Name != "" {
					name = " (" + v.Name + ")"
				}
				fmt.Fprintf(stdout, "  variant      %-14s %s q%d%s\n", v.Variant, v.PDQ, v.PDQQuality, name)
			}
			continue
		}
		for _, f := range rep.Forms {
			fmt.Fprintf(stdout, "  form         %s q%d (%s)\n", f.PDQ, f.PDQQuality, f.Name)
		}
	}
	return failed
}

func auditCommand() *cobra.Command {
	var asJSON bool
	var since, path, config, adapter string
	c := &cobra.Command{
		Use:   "audit [--since T] [--json] [--log PATH | --config FILE]",
		Short: "List audit records (blocks, unscanned media, actions)",
		Long: `Lists the records of the audit log, including rotated files, oldest first.
The log is the audit_log of the configuration (--config, default the
Caddyfile in the current directory, as for caddy run) unless --log names it.
--since takes an RFC 3339 time or a duration such as 24h (that long ago).
With --json, one record per line as stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			if path == "" {
				var err error
				if path, err = auditPathFromConfig(config, adapter); err != nil {
					return err
				}
			}
			from, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			return runAudit(cmd.OutOrStdout(), path, from, asJSON)
		},
	}
	c.Flags().StringVar(&path, "log", "", "the audit log file (overrides --config)")
	c.Flags().StringVar(&config, "config", "", "configuration to read audit_log from (default: ./Caddyfile)")
	c.Flags().StringVar(&adapter, "adapter", "", "name of the config adapter")
	c.Flags().StringVar(&since, "since", "", "only records at or after this time (RFC 3339) or this long ago (e.g. 24h)")
	c.Flags().BoolVar(&asJSON, "json", false, "one JSON record per line")
	return c
}

func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time or a duration such as 24h", s)
	}
	return t, nil
}

func runAudit(w io.Writer, path string, since time.Time, asJSON bool) error {
	enc := json.NewEncoder(w)
	return audit.Read(path, since, func(r audit.Record) error {
		if asJSON {
			return enc.Encode(r)
		}
		what := r.Kind
		switch {
		case r.Kind == audit.KindAction && r.Action == audit.ActionCommand:
			// A moderator's command: who asked what, and the answer's
			// first line.
			outcome, _, _ := strings.Cut(r.Outcome, "\n")
			what = fmt.Sprintf("command %q: %s", r.Command, outcome)
		case r.Kind == audit.KindAction:
			what = r.Action + " " + r.Outcome + " (for " + r.Ref + ")"
		}
		_, err := fmt.Fprintf(w, "%s  %-12s %-8s %-22s user=%s media=%s %s\n", r.Time.UTC().Format(time.RFC3339), what, r.Direction, r.Endpoint, orDash(r.User), orDash(r.Media), r.ID)
		return err
	})
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditPathFromConfig reads apps.mediaguard.audit_log from a configuration
// the way `caddy run` would load it.
func auditPathFromConfig(config, adapter string) (string, error) {
	cfg, _, _, err := caddycmd.LoadConfig(config, adapter)
	if err != nil {
		return "", fmt.Errorf("loading the configuration: %w", err)
	}
	var parsed struct {
		Apps struct {
			Mediaguard struct {
				AuditLog string `json:"audit_log"`
			} `json:"mediaguard"`
		} `json:"apps"`
	}
	if len(cfg) == 0 || json.Unmarshal(cfg, &parsed) != nil || parsed.Apps.Mediaguard.AuditLog == "" {
		return "", fmt.Errorf("the configuration sets no audit_log; name the file with --log")
	}
	return parsed.Apps.Mediaguard.AuditLog, nil
}
