"""The breed list doggo collects by default, and the mapping from folder names to breed names."""

from __future__ import annotations

import re

# Breeds with full AKC recognition, written out from the AKC's published list (2024) so the
# project owns its list; the AKC adds breeds most years, so treat this as data to update.
# The original's 188 names live in ../shared/breeds for comparison only.
AKC_BREEDS: tuple[str, ...] = (
    "Affenpinscher", "Afghan Hound", "Airedale Terrier", "Akita", "Alaskan Malamute",
    "American English Coonhound", "American Eskimo Dog", "American Foxhound",
    "American Hairless Terrier", "American Staffordshire Terrier", "American Water Spaniel",
    "Anatolian Shepherd Dog", "Australian Cattle Dog", "Australian Shepherd", "Australian Terrier",
    "Azawakh", "Barbet", "Basenji", "Basset Fauve de Bretagne", "Basset Hound", "Beagle",
    "Bearded Collie", "Beauceron", "Bedlington Terrier", "Belgian Laekenois", "Belgian Malinois",
    "Belgian Sheepdog", "Belgian Tervuren", "Bergamasco Sheepdog", "Berger Picard",
    "Bernese Mountain Dog", "Bichon Frise", "Biewer Terrier", "Black and Tan Coonhound",
    "Black Russian Terrier", "Bloodhound", "Bluetick Coonhound", "Boerboel", "Border Collie",
    "Border Terrier", "Borzoi", "Boston Terrier", "Bouvier des Flandres", "Boxer",
    "Boykin Spaniel", "Bracco Italiano", "Briard", "Brittany", "Brussels Griffon", "Bull Terrier",
    "Bulldog", "Bullmastiff", "Cairn Terrier", "Canaan Dog", "Cane Corso",
    "Cardigan Welsh Corgi", "Cavalier King Charles Spaniel", "Cesky Terrier",
    "Chesapeake Bay Retriever", "Chihuahua", "Chinese Crested", "Chinese Shar-Pei", "Chinook",
    "Chow Chow", "Cirneco dell'Etna", "Clumber Spaniel", "Cocker Spaniel", "Collie",
    "Coton de Tulear", "Curly-Coated Retriever", "Dachshund", "Dalmatian",
    "Dandie Dinmont Terrier", "Doberman Pinscher", "Dogo Argentino", "Dogue de Bordeaux",
    "English Cocker Spaniel", "English Foxhound", "English Setter", "English Springer Spaniel",
    "English Toy Spaniel", "Entlebucher Mountain Dog", "Field Spaniel", "Finnish Lapphund",
    "Finnish Spitz", "Flat-Coated Retriever", "French Bulldog", "German Pinscher",
    "German Shepherd Dog", "German Shorthaired Pointer", "German Wirehaired Pointer",
    "Giant Schnauzer", "Glen of Imaal Terrier", "Golden Retriever", "Gordon Setter",
    "Grand Basset Griffon Vendeen", "Great Dane", "Great Pyrenees", "Greater Swiss Mountain Dog",
    "Greyhound", "Harrier", "Havanese", "Ibizan Hound", "Icelandic Sheepdog",
    "Irish Red and White Setter", "Irish Setter", "Irish Terrier", "Irish Water Spaniel",
    "Irish Wolfhound", "Italian Greyhound", "Japanese Chin", "Keeshond", "Kerry Blue Terrier",
    "Komondor", "Kuvasz", "Labrador Retriever", "Lagotto Romagnolo", "Lakeland Terrier",
    "Lancashire Heeler", "Leonberger", "Lhasa Apso", "Lowchen", "Maltese", "Manchester Terrier",
    "Mastiff", "Miniature American Shepherd", "Miniature Bull Terrier", "Miniature Pinscher",
    "Miniature Schnauzer", "Mudi", "Neapolitan Mastiff", "Nederlandse Kooikerhondje",
    "Newfoundland", "Norfolk Terrier", "Norrbottenspets", "Norwegian Buhund",
    "Norwegian Elkhound", "Norwegian Lundehund", "Norwich Terrier",
    "Nova Scotia Duck Tolling Retriever", "Old English Sheepdog", "Otterhound", "Papillon",
    "Parson Russell Terrier", "Pekingese", "Pembroke Welsh Corgi",
    "Petit Basset Griffon Vendeen", "Pharaoh Hound", "Plott Hound", "Pointer",
    "Polish Lowland Sheepdog", "Pomeranian", "Poodle", "Portuguese Podengo Pequeno",
    "Portuguese Water Dog", "Pug", "Puli", "Pumi", "Pyrenean Shepherd", "Rat Terrier",
    "Redbone Coonhound", "Rhodesian Ridgeback", "Rottweiler", "Russell Terrier", "Russian Toy",
    "Saint Bernard", "Saluki", "Samoyed", "Schipperke", "Scottish Deerhound", "Scottish Terrier",
    "Sealyham Terrier", "Shetland Sheepdog", "Shiba Inu", "Shih Tzu", "Siberian Husky",
    "Silky Terrier", "Skye Terrier", "Sloughi", "Slovensky Cuvac", "Smooth Fox Terrier",
    "Soft Coated Wheaten Terrier", "Spanish Mastiff", "Spanish Water Dog", "Spinone Italiano",
    "Staffordshire Bull Terrier", "Standard Schnauzer", "Sussex Spaniel", "Swedish Vallhund",
    "Thai Ridgeback", "Tibetan Mastiff", "Tibetan Spaniel", "Tibetan Terrier", "Toy Fox Terrier",
    "Treeing Walker Coonhound", "Vizsla", "Weimaraner", "Welsh Springer Spaniel", "Welsh Terrier",
    "West Highland White Terrier", "Whippet", "Wire Fox Terrier", "Wirehaired Pointing Griffon",
    "Wirehaired Vizsla", "Xoloitzcuintli", "Yorkshire Terrier",
)  # fmt: skip

_WNID_FOLDER = re.compile(r"^(n\d{8})-(.+)$")


def breed_slug(name: str) -> str:
    """Return the folder-safe name of a breed: lower case, words joined by underscores."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"breed name {name!r} has no letters or digits")
    return slug


def parse_breed_folder(folder: str) -> tuple[str, str | None]:
    """Return (display name, wnid or None) for a folder such as `n02085620-Chihuahua`."""
    match = _WNID_FOLDER.match(folder)
    wnid, raw = (match.group(1), match.group(2)) if match else (None, folder)
    words = re.split(r"[_ ]+", raw.strip())
    display = " ".join(w[:1].upper() + w[1:] for w in words if w)
    return display, wnid


def search_query(breed: str) -> str:
    """Return the image-search query for a breed, as the original phrased it."""
    return f"{breed} dog"
