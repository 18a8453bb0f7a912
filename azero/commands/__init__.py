"""One module per `azero` subcommand; each is thin and calls into the library."""
