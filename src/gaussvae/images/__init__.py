"""Images in: the embedded generator, a user's folder, and the image set with its splits."""
