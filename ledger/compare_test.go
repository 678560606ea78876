package ledger

import (
	"reflect"
)

// sameRecord compares records as the ledger stores them: times to the
// second and by instant, empty lists as nil.
func sameRecord(a, b Record) bool {
	if !a.FirstSeen.Truncate(1e9).Equal(b.FirstSeen.Truncate(1e9)) || !a.LastSeen.Truncate(1e9).Equal(b.LastSeen.Truncate(1e9)) {
		return false
	}
	a.FirstSeen, a.LastSeen = b.FirstSeen, b.LastSeen
	a.Query.Forms, b.Query.Forms = norm(a.Query.Forms), norm(b.Query.Forms)
	a.Query.Dihedral, b.Query.Dihedral = norm(a.Query.Dihedral), norm(b.Query.Dihedral)
	a.Query.Embedded, b.Query.Embedded = norm(a.Query.Embedded), norm(b.Query.Embedded)
	return reflect.DeepEqual(a, b)
}

func norm[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
