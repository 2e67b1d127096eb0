package parser_test

import (
	"fmt"

	"github.com/switchboard-io/switchboard/parser"
)

func Example() {
	// Sending: build the payload, then encode the packet.
	data, atts, err := parser.MarshalEvent("upload", "photo.png", []byte{0x89, 'P', 'N', 'G'})
	if err != nil {
		panic(err)
	}
	text, bins := parser.Encode(&parser.Packet{Type: parser.Event, Namespace: "/files", ID: 1, HasID: true, Data: data, Attachments: atts})
	fmt.Printf("%s + %d attachment(s)\n", text, len(bins))

	// Receiving: one Decoder per connection reassembles the packet.
	d := parser.NewDecoder(nil)
	p, _ := d.AddText(text) // nil: waiting for the attachment
	for _, b := range bins {
		p, err = d.AddBinary(b)
		if err != nil {
			panic(err)
		}
	}
	name, args, _ := parser.EventName(p.Data)
	var file string
	var content []byte
	_ = parser.Unmarshal(args[0], p.Attachments, &file)
	_ = parser.Unmarshal(args[1], p.Attachments, &content)
	fmt.Println(p.Type, p.Namespace, p.ID, name, file, len(content))
	// Output:
	// 51-/files,1["upload","photo.png",{"_placeholder":true,"num":0}] + 1 attachment(s)
	// BINARY_EVENT /files 1 upload photo.png 4
}
