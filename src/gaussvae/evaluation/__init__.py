"""Measuring a trained model: codes as stored, image scores, codecs, prior samples, pictures,
study tables."""
