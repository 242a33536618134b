package main

import "boxswap/boxes"

// newDialer dials nothing yet: each box is connected on first use, one
// connection per box, shared by every command.
func newDialer(cfg *boxes.Config) (boxDialer, error) {
	return boxes.NewDialer(cfg), nil
}

// connect loads boxes.yaml and makes the dialer of its boxes; close it.
func (g *globalOptions) connect() (*boxes.Config, boxDialer, error) {
	cfg, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	d, err := newDialer(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, d, nil
}
