// Package option applies the rule every midstream package follows for the
// numbers and durations its options take: zero means the documented
// default; a negative value, or one outside the documented bounds, is
// refused with an error wrapping midstream.ErrInvalidOption.
package option

import (
	"fmt"

	"github.com/midstream-go/midstream"
)

// Set stores v in *dst, or def when v is zero. It returns an error wrapping
// midstream.ErrInvalidOption, leaving *dst alone, when v is negative, below
// lo or above hi; lo applies to non-zero values only (use 1 for "at least
// one"). what names the option in the error ("batch size").
//
// It only compares: nothing is sized from v before it is found within
// bounds.
func Set[T ~int | ~int64](dst *T, what string, v, def, lo, hi T) error {
	switch {
	case v == 0:
		*dst = def
		return nil
	case v < 0:
		return fmt.Errorf("%w: %s %v is negative", midstream.ErrInvalidOption, what, v)
	case v < lo:
		return fmt.Errorf("%w: %s %v is below the minimum %v", midstream.ErrInvalidOption, what, v, lo)
	case v > hi:
		return fmt.Errorf("%w: %s %v is above the maximum %v", midstream.ErrInvalidOption, what, v, hi)
	}
	*dst = v
	return nil
}
