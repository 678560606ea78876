package matcher

// MinPDQQuality is the PDQ quality below which l does not match a hash
// (min_pdq_quality, default applied): what a surface handing out hashes
// to be looked up later (hmaapi's /h/hash) must blank below.
func (l *Local) MinPDQQuality() int { return l.minQuality }

// PDQThreshold is the largest PDQ distance l matches (pdq_threshold,
// default applied).
func (l *Local) PDQThreshold() int { return l.threshold }
