"""`python -m helpers.serving photo.jpg ...`: the breeds a saved model sees in photos (see
helpers.serving.predict.main)."""

import sys

from helpers.serving.predict import main

sys.exit(main())
