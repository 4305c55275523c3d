"""ImageNet-1k facts doggo needs offline: the dog classes' indices, wnids and names.

ImageNet class i is the i-th wnid in sorted order of all 1000. The dog breeds are classes 151-268
plus dingo, dhole and African hunting dog (273-275); wolves and coyote (269-272) are not dogs here.
The names are those of the Stanford Dogs folders (`n02085620-Chihuahua`); dalmatian (251) is the
one ImageNet dog class that Stanford Dogs lacks.
"""

from __future__ import annotations

from helpers.breeds import DOG_WNIDS_AND_NAMES, parse_breed_folder

NUM_CLASSES = 1000
FIRST_DOG, LAST_DOG = 151, 268  # inclusive
WILD_DOGS = (273, 274, 275)  # dingo, dhole, African hunting dog

# The dog class that has no Stanford Dogs folder.
NOT_IN_STANFORD_DOGS = ("n02110341",)


def dog_class_indices() -> list[int]:
    """Return the ImageNet-1k indices of the 121 dog classes, ascending."""
    return [*range(FIRST_DOG, LAST_DOG + 1), *WILD_DOGS]


def dog_classes() -> list[dict]:
    """Return the dog classes as [{"index", "wnid", "name"}], with display names ("Maltese Dog")."""
    return [
        {"index": index, "wnid": wnid, "name": parse_breed_folder(f"{wnid}-{folder}")[0]}
        for index, (wnid, folder) in zip(dog_class_indices(), DOG_WNIDS_AND_NAMES, strict=True)
    ]


def imagenet_index_of_wnid() -> dict[str, int]:
    """Return {wnid: ImageNet-1k class index} for the dog classes."""
    return {c["wnid"]: c["index"] for c in dog_classes()}
