// The decoding options' table (`DecodingOption`, `ParameterError`, `OptionLimits`) is part of the
// engine's interface: `GenerationParameters` reads its defaults and ranges from it.
@_exported import BLIPOptions
