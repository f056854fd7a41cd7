package redistest

import (
	"errors"
	"testing"
)

// startContainer runs image with testcontainers-go. Not implemented yet.
func startContainer(t testing.TB, image string) (backend, error) {
	return nil, errors.New("container backend not implemented")
}
