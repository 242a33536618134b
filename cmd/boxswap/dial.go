package main

import "boxswap/boxes"

// newDialer dials nothing yet: each box is connected on first use, one
// connection per box, shared by every command. Tests replace it to add
// dial options.
var newDialer = func(cfg *boxes.Config) (boxDialer, error) {
	return boxes.NewDialer(cfg), nil
}
