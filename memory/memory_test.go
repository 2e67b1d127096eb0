package memory_test

import (
	"testing"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/memory"
	"github.com/switchboard-io/switchboard/storetest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func open(tb testing.TB, r switchboard.Retention) switchboard.Store {
	return memory.NewStore(&memory.StoreOptions{Retention: &r})
}

func TestStore(t *testing.T) {
	storetest.Run(t, open, nil)
}

func TestDefaultRetentionNeedsNoOptions(t *testing.T) {
	s := memory.NewStore(nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkAppend(b *testing.B) { storetest.BenchAppend(b, open) }

func BenchmarkRead(b *testing.B) { storetest.BenchRead(b, open) }
