package switchboard_test

import (
	"testing"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/adaptertest"
)

func TestLocalAdapterSuite(t *testing.T) {
	adaptertest.Run(t, 1, func(t *testing.T) *switchboard.Server {
		return switchboard.NewServer(&switchboard.Options{Adapter: switchboard.NewLocalAdapter})
	})
}
