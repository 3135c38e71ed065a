import NetMP
print("netmp")
