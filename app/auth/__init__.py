"""Who is calling: signing keys, access and refresh tokens, their verification, passwords."""
