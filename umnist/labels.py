"""The label space every stage shares: ten digit classes, the background label of the crop set, the sums."""

NUM_CLASSES = 10         # digits 0..9: the detector's classes and the classifier's outputs
BACKGROUND_LABEL = 10    # crop-set label of a square holding no digit (synth `crops_background`)
MAX_DIGIT_SUM = 27       # the competition's largest digit sum: its train.csv holds sums 0..27
