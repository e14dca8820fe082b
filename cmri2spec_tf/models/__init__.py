"""Networks of Table 1 (translator) and the discriminator."""
