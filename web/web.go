// Package web holds the browser side of Switchboard, embedded in the
// binary: the JavaScript client (switchboard.js, a Socket.IO v4 client
// with hub helpers) and the demo page served at / by the hub.
package web

import (
	"embed"
	"io/fs"
)

// ClientJS is the source of switchboard.js.
//
//go:embed switchboard.js
var ClientJS []byte

//go:embed demo
var demo embed.FS

// Demo returns the files of the demo page; index.html is its entry point.
func Demo() fs.FS {
	sub, err := fs.Sub(demo, "demo")
	if err != nil {
		panic(err) // the directory is embedded above
	}
	return sub
}
