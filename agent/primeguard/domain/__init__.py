"""Pure value types shared by every layer. No I/O and no vendor libraries here."""
