import sys

if __name__ != "__main__":
    print("this module is a script, run it directly")
    sys.exit(4)
