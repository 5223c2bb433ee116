// The decoding options' table (`DecodingOption`) is part of the protocol's interface: `DecodingOptions`
// reads and writes its fields by the table's rows.
@_exported import BLIPOptions
