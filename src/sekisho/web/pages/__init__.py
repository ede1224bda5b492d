"""The pages, one module per area; each is a router of `WebRoute`s."""
