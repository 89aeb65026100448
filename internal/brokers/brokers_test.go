package brokers

import (
	"testing"
)

func TestRabbitMQ_StartsKillsAndRestarts(t *testing.T) {
	r := StartRabbitMQ(t)
	if err := amqpReady(r.URL); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	if err := amqpReady(r.URL); err == nil {
		t.Fatal("the node still answers after Kill")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
}

func TestNATS_StartsKillsAndRestarts(t *testing.T) {
	n := StartNATS(t, NATSOptions{})
	n.Kill()
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
}
