"""A Flask API over a small scikit-learn classifier, trained when the image is built."""
