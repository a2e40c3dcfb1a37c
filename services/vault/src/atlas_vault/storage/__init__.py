"""Where ciphertext lives: a blob store interface and its filesystem implementation."""
